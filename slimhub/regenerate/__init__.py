"""Regenerating whole module versions of the catalogue (slimhub-regenerate).

The modules of the package follow the pipeline:

  plan.py      selects catalogue modules, locates their checkpoints and
               decides what must be (re)built: the tasks
  build.py     the one unit of work, "build module K": export, verify,
               model card, archive; writes the module and returns its record
  manifest.py  records, OUT/manifest.json, content digests and the check of
               a tree against its manifest
  cards.py     tfhub.dev-style model cards
  fetch.py     downloads and safely extracts official checkpoint tarballs
  engines/     run the tasks: local.py (a pool of worker processes, the
               default) and beam.py (an Apache Beam pipeline)
"""
