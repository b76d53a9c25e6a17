"""Terminal output in a log: nothing wrapped mid-sentence, nothing cut, when stdout is not a terminal."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TITLE = "sweep members (done: finished for this recipe; partial: resumes) " + "and a long title " * 8
NOTE = "a note under the table that runs on well beyond any terminal's width, " * 5
LINE = "1. A plain line of what to look at, longer than 160 columns, " * 4


def test_in_a_log_no_line_is_wrapped_or_cut(tmp_path):
    code = (f"from xling.common.console import print_table, console\n"
            f"print_table({TITLE!r}, ['member', 'train', 'eval'], [['en+ru', 'done', 'partial']], note={NOTE!r})\n"
            f"print_table('wide', ['c%d' % i for i in range(30)], [['%d.123456' % i for i in range(30)]])\n"
            f"console.print({LINE!r}, markup=False)\n")
    log = tmp_path / "log.txt"
    with log.open("w") as out:
        subprocess.run([sys.executable, "-c", code], stdout=out, cwd=ROOT, check=True)
    lines = [line.rstrip() for line in log.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == TITLE.rstrip()  # the title whole on its line, not wrapped to the table's width
    assert lines[2].split() == ["member", "train", "eval"] and lines[4].split() == ["en+ru", "done", "partial"]
    assert NOTE.rstrip() in lines and LINE.rstrip() in lines
    wide = lines[lines.index("wide") + 2].split()
    assert wide == [f"c{i}" for i in range(30)]  # 30 columns, none cut to "…"
    assert lines[lines.index("wide") + 4].split() == [f"{i}.123456" for i in range(30)]
    assert "…" not in log.read_text(encoding="utf-8")


def test_module_main_gives_an_exit_code_and_one_line_for_an_xling_error(capsys):
    from xling.common.console import module_main
    from xling.common.errors import XlingError

    def fails() -> None:
        raise XlingError("no such run folder: give RUN_DIR")

    assert module_main(fails) == 2
    assert capsys.readouterr().err.strip() == "error: no such run folder: give RUN_DIR"
    assert module_main(lambda: None) == 0 and module_main(lambda: 3) == 3
    assert capsys.readouterr().err == ""
