"""vgr-etl: a Beam ETL for visual-reasoning training data (VGR-SFT, VisualPRM400K, VisualProcessBench)."""

__version__ = "0.1.0"
