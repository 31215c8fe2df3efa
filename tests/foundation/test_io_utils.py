from __future__ import annotations

import hashlib
import io
from pathlib import Path

from gitops_ml.io_utils import sha256_file, sha256_of


def test_sha256_of_a_stream_reads_in_chunks_from_where_it_stands(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    assert sha256_of(io.BytesIO(data), chunk=1000) == hashlib.sha256(data).hexdigest()
    stream = io.BytesIO(data)
    stream.seek(10)
    assert sha256_of(stream) == hashlib.sha256(data[10:]).hexdigest()
    (tmp_path / "f.bin").write_bytes(data)
    assert sha256_file(tmp_path / "f.bin") == hashlib.sha256(data).hexdigest()
