"""The build pipeline below slimhub.export: one module variant's graph
(module_fn), the checkpoint it restores (checkpoints), the input scaling a
checkpoint expects (preprocessing) and where its weights come from
(provenance). Knows no file formats: slimhub.formats writes them."""
