"""Re-scoring a stored run with another parser, in place (same run id, one transaction)."""

from __future__ import annotations

from orienteer.core.answers import PARSERS
from orienteer.data.catalog import bench_items_frame, get_run
from orienteer.data.errors import OrienteerError
from orienteer.data.scoring import score_staged
from orienteer.data.store import PREDICTION_COLUMNS, refresh_stats
from orienteer.data.workspace import Workspace


def rescore_run(ws: Workspace, run: str, parser: str) -> tuple[int, int]:
    """Parse the run's stored replies again; returns (correct before, correct after)."""
    if parser not in PARSERS:
        raise OrienteerError(f"unknown parser {parser!r} (expected one of {', '.join(PARSERS)})")
    with ws.read() as ro:
        info = get_run(ro, run)
        items = bench_items_frame(ro, info.bench_id)
        stored = ro.execute(
            """SELECT source_line AS line, ? AS run, item_idx, reply, given_letter, probs, file_verdict AS verdict,
                      correct
               FROM predictions WHERE run_id = ?""",
            [run, info.run_id],
        ).df()
    before = int(stored["correct"].sum())
    with ws.staging() as con:
        con.register("items_view", items)
        con.execute("CREATE TEMP TABLE items AS SELECT * FROM items_view")
        con.register("stored_view", stored.drop(columns=["correct"]))
        con.execute(
            """CREATE TEMP TABLE keyed AS
               SELECT line::BIGINT AS line, run::VARCHAR AS run, item_idx::INTEGER AS item_idx, reply::VARCHAR AS reply,
                      given_letter::VARCHAR AS given_letter, probs::VARCHAR AS probs, verdict::BOOLEAN AS verdict
               FROM stored_view"""
        )
        score_staged(con, parser)
        after = int(con.execute("SELECT count(*) FROM scored WHERE correct").fetchone()[0])
        with ws.attach_for_write(con):
            current = con.execute("SELECT run_id FROM ws.runs WHERE name = ?", [run]).fetchone()
            if current is None or current[0] != info.run_id:
                raise OrienteerError(f"run {run!r} changed while it was being re-scored; try again")
            con.execute("DELETE FROM ws.predictions WHERE run_id = ?", [info.run_id])
            con.execute(
                f"""INSERT INTO ws.predictions ({PREDICTION_COLUMNS})
                    SELECT ?, item_idx, task, reply, given_letter, letter, outcome, correct, gold_label, pred_label,
                           category, probs, file_verdict, source_line FROM scored ORDER BY item_idx""",
                [info.run_id],
            )
            con.execute("UPDATE ws.runs SET parser = ? WHERE run_id = ?", [parser, info.run_id])
            refresh_stats(con, [info.run_id], info.bench_id)
    return before, after
