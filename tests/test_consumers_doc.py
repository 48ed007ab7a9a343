"""The code of the section "Using the modules on TensorFlow >= 2.16" runs as
written, its tfhub.dev handles resolved offline through a TFHUB_CACHE_DIR
seeded with local exports."""

import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
SECTION = "Using the modules on TensorFlow >= 2.16"
# Whichever file holds the section: the docs page, or the README it may be
# copied into.
DOCUMENTS = (REPO / "docs" / "consumers.md", REPO / "README.md")
HANDLE = re.compile(r'"(https://tfhub\.dev/google/imagenet/([a-z0-9_]+)/'
                    r'(classification|feature_vector)/(\d))"')


def python_blocks(path, heading):
  """The ```python blocks of the Markdown section `heading` of `path` (up
  to the next heading of the same or a higher level); [] if no such
  section."""
  blocks, level, block = [], None, None
  for line in pathlib.Path(path).read_text().splitlines():
    if block is not None:
      if line.strip() == "```":
        blocks.append("\n".join(block) + "\n")
        block = None
      else:
        block.append(line)
      continue
    match = re.match(r"(#+)\s+(.*?)\s*$", line)
    if match:
      if level is not None and len(match.group(1)) <= level:
        break
      if match.group(2) == heading:
        level = len(match.group(1))
    elif level is not None and line.strip() == "```python":
      block = []
  return blocks


def _blocks():
  found = [(path, python_blocks(path, SECTION)) for path in DOCUMENTS
           if path.exists()]
  found = [(path, blocks) for path, blocks in found if blocks]
  assert found, f"no file has the section {SECTION!r} with code"
  return [pytest.param(block, id=f"{path.name}-{index}")
          for path, blocks in found for index, block in enumerate(blocks)]


@pytest.mark.parametrize("code", _blocks())
def test_section_code_runs(code, exported_module, tmp_path):
  cache = tmp_path / "tfhub_cache"
  handles = HANDLE.findall(code)
  assert handles, "each block loads a module"
  for url, stem, kind, version in handles:
    target = cache / hashlib.sha1(url.encode("utf8")).hexdigest()
    if not target.exists():
      shutil.copytree(exported_module(stem, kind, int(version)), target)
  result = subprocess.run(
      [sys.executable, "-c", code], capture_output=True, text=True,
      cwd=tmp_path, check=False,
      env=dict(os.environ, TFHUB_CACHE_DIR=str(cache),
               TF_CPP_MIN_LOG_LEVEL="3"))
  assert result.returncode == 0, result.stderr[-3000:]


def test_python_blocks_stop_at_the_next_section(tmp_path):
  page = tmp_path / "page.md"
  page.write_text("# Top\n## A\n```python\na = 1\n```\n### A.1\n```python\n"
                  "b = 2\n```\n## B\n```python\nc = 3\n```\n")
  assert python_blocks(page, "A") == ["a = 1\n", "b = 2\n"]
  assert python_blocks(page, "B") == ["c = 3\n"]
  assert python_blocks(page, "C") == []
