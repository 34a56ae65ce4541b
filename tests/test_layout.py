"""Every path under --output comes from the layout: parts named after their first row, kept in row order."""

from beam_pipelines.layout import OutputLayout, manifest_path, part_name, part_order


def test_paths_of_a_local_and_a_gcs_output():
    local, remote = OutputLayout("/data/out"), OutputLayout("gs://bucket/out")
    assert local.data_file("parquet_regions", "v000001-a-00000-000000") == (
        "/data/out/parquet/regions/v000001-a-00000-000000.parquet"
    )
    assert remote.data_file("webdataset", "u-000000") == "gs://bucket/out/webdataset/u-000000.tar"
    assert remote.report() == "gs://bucket/out/report.json"
    assert remote.report("v000002") == "gs://bucket/out/versions/v000002/report.json"
    assert local.page("preview/index.html", "v000002") == "/data/out/versions/v000002/preview/index.html"
    assert local.current == "/data/out/current.json" and local.scratch == "/data/out/_tmp"
    assert manifest_path("v000003") == "versions/v000003/manifest.json"
    assert local.relative(local.manifest("v000003")) == manifest_path("v000003")
    assert local.data_folders == ("parquet/samples", "parquet/regions", "index", "webdataset", "rejected")


def test_parts_sort_in_row_order_whatever_the_width_of_their_offsets():
    names = [part_name("v1-a", n) for n in (1_000_000, 2, 999_999, 0)]
    assert names[1] == "v1-a-000002" and names[0] == "v1-a-1000000"
    ordered = sorted((f"index/{n}.parquet" for n in names), key=part_order)
    assert [part_order(p)[1] for p in ordered] == [0, 2, 999_999, 1_000_000]
    assert part_order("rejected/v1-a-errors.jsonl") == ("v1-a-errors", -1)
