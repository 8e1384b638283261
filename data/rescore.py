"""Re-scoring a stored run with another parser, in place (same run id, one transaction)."""

from __future__ import annotations

from orienteer.core.answers import PARSERS
from orienteer.data.catalog import get_run
from orienteer.data.errors import OrienteerError
from orienteer.data.scoring import score_staged
from orienteer.data.single import single_value
from orienteer.data.store import PREDICTION_COLUMNS, refresh_stats
from orienteer.data.workspace import Workspace


def rescore_run(ws: Workspace, run: str, parser: str) -> tuple[int, int]:
    """Parse the run's stored replies again; returns (correct before, correct after)."""
    if parser not in PARSERS:
        raise OrienteerError(f"unknown parser {parser!r} (expected one of {', '.join(PARSERS)})")
    with ws.staging() as con:
        with ws.attach_read(con, "src"):
            info = get_run(con, run, catalog="src")
            con.execute(
                """CREATE TEMP TABLE items AS
                   SELECT item_idx, item_id, task, option_letters, option_labels, answer_letter, answer_label
                   FROM src.items WHERE bench_id = ?""",
                [info.bench_id],
            )
            con.execute(
                """CREATE TEMP TABLE keyed AS
                   SELECT source_line::BIGINT AS line, ?::VARCHAR AS run, item_idx, reply, given_letter, probs,
                          file_verdict AS verdict
                   FROM src.predictions WHERE run_id = ?""",
                [run, info.run_id],
            )
            before = int(single_value(
                con,
                "SELECT count(*) FROM src.predictions WHERE run_id = ? AND correct", [info.run_id]
            ))
        score_staged(con, parser)
        con.execute("CREATE TEMP TABLE rescored AS SELECT * FROM scored")
        after = int(single_value(con, "SELECT count(*) FROM rescored WHERE correct"))
        with ws.attach_for_write(con):
            current = con.execute("SELECT run_id FROM ws.runs WHERE name = ?", [run]).fetchone()
            if current is None or current[0] != info.run_id:
                raise OrienteerError(f"run {run!r} changed while it was being re-scored; try again")
            con.execute("DELETE FROM ws.predictions WHERE run_id = ?", [info.run_id])
            con.execute(
                f"""INSERT INTO ws.predictions ({PREDICTION_COLUMNS})
                    SELECT ?, item_idx, task, reply, given_letter, letter, outcome, correct, gold_label, pred_label,
                           category, probs, file_verdict, source_line FROM rescored ORDER BY item_idx""",
                [info.run_id],
            )
            con.execute("UPDATE ws.runs SET parser = ? WHERE run_id = ?", [parser, info.run_id])
            refresh_stats(con, [info.run_id], info.bench_id)
    return before, after
