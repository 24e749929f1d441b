"""Every `lscloud bench` sub-command calls its benchmark with arguments the function really takes:
the table in lscloud/local/benches.py and the functions cannot drift apart unnoticed."""

import inspect
from pathlib import Path

import pytest

from lscloud import cli
from lscloud.local import benches


@pytest.mark.parametrize("bench", benches.BENCHES, ids=lambda b: b.name)
def test_each_benchmark_parses_and_binds_to_its_function(bench, tmp_path):
    argv = ["bench", bench.name] + (["--reuse", "--state-dir", str(tmp_path)] if bench.reuse else [])
    args = cli.build_parser().parse_args(argv)
    assert args.fn is cli.cmd_bench and args.bench_command == bench.name
    kw = benches.arguments(bench, args, lambda: tmp_path)
    inspect.signature(bench.function()).bind(**kw)       # TypeError on a keyword the function lacks
    for option in bench.options:
        assert kw[option.dest] == option.default
    if bench.reuse:
        assert kw["reuse_state_dir"] == tmp_path
    assert kw["functions_dir"] == Path("functions")


def test_the_shared_options_keep_their_meaning():
    args = cli.build_parser().parse_args(["bench", "border", "--waiting", "100", "--concurrency", "3",
                                          "--max-seconds", "5"])
    kw = benches.arguments(benches.BY_NAME["border"], args, lambda: None)
    assert (kw["waiting"], kw["concurrency"], kw["max_seconds"], kw["reuse_state_dir"]) == (100, 3, 5.0, None)
    args = cli.build_parser().parse_args(["bench", "all", "--only", "up", "--json", "x.json"])
    kw = benches.arguments(benches.BY_NAME["all"], args, lambda: None)
    assert kw["only"] == ("up",) and kw["json_path"] == Path("x.json") and "reuse_state_dir" not in kw
