"""`precision-bench speed --peers`: the bit check of every shared job against
each peer, and the table's claims of which peers compute our bits.  No timing is
asserted (speed lives in the benchmark itself)."""

import numpy as np
import pytest

from kernels import speed_peers as sp
from kernels.cli import main

N = 100_000


@pytest.mark.parametrize("job", sp.JOBS, ids=[j.name for j in sp.JOBS])
def test_each_peer_computes_the_bits_the_table_claims(job):
    p = sp.prepare(job, N)
    for e in p["peers"]:
        peer = e["peer"]
        if peer.setup is None:  # the library has no such operation: said, not run
            assert e["skip"] == peer.why_not and e["call"] is None
            continue
        # the CI installs every peer: each one that can do the job runs
        assert e["skip"] is None, f"{peer.name}: {e['skip']}"
        if peer.same:
            assert e["differs"] == 0, f"{peer.name}: {sp.bits_cell(e['differs'], p['x'].size)}"
        else:
            assert e["differs"] > 0, f"{peer.name} now computes our bits: the table should say so"


def test_compare_counts_the_elements_whose_bits_differ():
    ref = np.arange(10, dtype=np.float32)
    y = ref.copy()
    assert sp.compare(ref, y) == 0
    y[3] = np.nextafter(y[3], np.float32(100))
    y[7] = -0.0 if ref[7] == 0 else -ref[7]
    assert sp.compare(ref, y) == 2
    assert sp.compare(np.zeros(4, np.float16), np.array([0.0, -0.0, 0.0, 0.0], np.float32)) == 1  # exact cast, then bits
    assert sp.bits_cell(0, 10) == "same bits" and sp.bits_cell(2, 10) == "differs: 2 of 10 elements"


def test_cli_speed_peers_prints_every_job(capsys):
    code = main(["speed", "--peers", "--n", str(N), "--repeat", "1"])
    out, err = capsys.readouterr()
    assert code == 0
    for job in sp.JOBS:
        assert job.name in out
    assert out.count("  -> ") == len(sp.JOBS)  # one verdict per job
    assert out.count("-> fastest") == sum(any(p.same and p.setup for p in j.peers) for j in sp.JOBS)
    assert "numexpr has no float16" in out


def test_cli_speed_peers_unknown_job_one_line_status_2(capsys):
    code = main(["speed", "--peers", "--case", "nope", "--n", "1000"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "unknown job 'nope'" in err and repr(sp.JOBS[0].name) in err
