"""The data stage: LabelImg folders → validated, split CSVs → label map → TFRecords (`webdet prepare`).

Modules, one job each: `voc` (LabelImg XML), `scan` (pairing XML with images), `images` (decode,
validate, re-encode), `boxes` (fit boxes to the real pixels), `pool` (parallel work), `split`,
`csv_io`, `label_map`, `tfrecords`, `report` and `summary`, `prepare` (orchestration), `convert`
(`voc-to-csv`, `csv-to-tfrecord`), `synth` (built-in synthetic data), `kaggle`, `cli`.
"""
