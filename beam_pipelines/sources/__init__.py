"""Sources: input files read into raw records, and one module per upstream layout (a `dataset.Dataset`) that parses
them into `Sample`s and holds everything else specific to it (`registry` lists them)."""
