"""Record files → chunks → raw records, one reader module per input format behind one small interface.

A *chunk* is a run of consecutive input rows of one record file (a file, or a JSON Lines member of a zip archive).
It is the unit of parallelism and of output: every shard the pipeline writes holds the accepted records of one
chunk, in input order, so no element-level shuffle is needed (as img2dataset, seqio and datatrove do) and reruns
give the same files. Planning reads only what it must to find row boundaries: Parquet metadata, or one sequential
pass over JSON Lines text (line offsets) or an Arrow IPC stream (record batch offsets), holding one batch at a time.

Each format module (`jsonl`, `json_document`, `parquet`, `arrow`) has its own chunk type and two functions:
`plan(file, rows_per_chunk) -> list[Chunk]` and `read(chunk) -> Iterator[RawRecord]`; `formats` picks the
reader of a file.
"""
