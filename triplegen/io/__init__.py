"""Files in and out: reading captions, writing Parquet atomically, the schema and metadata key, the
names of the files beside an output, the dataset card, COCO annotations and the HTML viewer."""
