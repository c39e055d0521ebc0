"""The lake: write-ahead log, Parquet files on disk or S3, the file manifest, DuckDB queries."""
