"""``swin export``: deployment formats, written by their own converters and verified by their own runtimes.

:mod:`.formats` (what each format can hold), :mod:`.spec` (one export's choices), :mod:`.exporter` (the
order of work), one ``<name>_format`` module per format (write, read the record, run), :mod:`.verify`
(logits against eager), :mod:`.quantize` (int8), :mod:`.metadata` (what predict needs, in the file) and
:mod:`.runtime` (an exported file as a model predict and eval run).
"""
