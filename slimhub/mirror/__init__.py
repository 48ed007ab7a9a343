"""Serving a regenerated collection behind the handles code already names.

`layout.mirror` lays out a checked regeneration output (OUT and its
manifest) as a tensorflow_hub cache (`TFHUB_CACHE_DIR`, keyed by the sha1
of each handle) and as a static HTTP tree that any web server turns into a
hub mirror, with a catalogue web page (`pages`). See docs/serving.md.
"""
