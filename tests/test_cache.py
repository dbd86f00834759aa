"""The numba disk cache follows the whole package's source, not one file's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kernels

CODE = (
    "import numpy as np, kernels; print(kernels.__file__); "
    "print(kernels.transform(np.array([1000.9], np.float32), 'scale', divisor=1.0, output_dtype='float16')[0].item())"
)


def test_kernel_recompiles_when_an_inlined_module_changes(tmp_path):
    pkg = tmp_path / "kernels"
    shutil.copytree(Path(kernels.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("NUMBA_CACHE_DIR", None)

    def run():
        # cwd: the copy, so neither the checkout nor an editable install shadows it
        out = subprocess.run(
            [sys.executable, "-c", CODE], env=env, cwd=tmp_path, check=True, capture_output=True, text=True
        ).stdout.split()
        assert Path(out[0]).parent == pkg
        return out[1]

    assert run() == "1001.0"  # round to nearest (even) in float16: spacing 0.5 at 1000
    codecs = pkg / "codecs" / "half.py"
    rounding = "            return lambda codec, v: f32_to_f16_bits(v)\n"
    truncating = "            return lambda codec, v: f32_to_f16_bits(f32_from_bits(f32_bits(v) & np.uint32(0xFFFFE000)))\n"
    src = codecs.read_text()
    assert src.count(rounding) == 1
    codecs.write_text(src.replace(rounding, truncating) + "from ._bits import f32_bits, f32_from_bits\n")
    # the kernel lives in transforms.py, which did not change; it inlines the new encode
    assert run() == "1000.5"
