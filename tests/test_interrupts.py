"""Ctrl-C and SIGTERM: one interrupt, and never in the middle of a write to the MLflow store."""

from __future__ import annotations

import os
import signal
import time

import pytest
from mlflow.tracking import MlflowClient
from sqlalchemy import event

from superres.interrupts import Terminated, deferred, terminate_as_interrupt
from superres.tracking import Tracker


def test_sigterm_is_an_interrupt_within_the_block_and_the_previous_handler_is_restored():
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        with pytest.raises(Terminated, match="SIGTERM"), terminate_as_interrupt():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # interrupted at once
        assert received == []
        os.kill(os.getpid(), signal.SIGTERM)  # the handler from before the block has it again
        time.sleep(0.1)
        assert received == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_within_a_deferred_block_acts_after_it(sig):
    done = []
    with pytest.raises(KeyboardInterrupt), terminate_as_interrupt():
        with deferred():
            os.kill(os.getpid(), sig)
            time.sleep(0.2)  # not interrupted
            done.append("the block's end")
        done.append("after the block")  # the interrupt is raised before this
    assert done == ["the block's end"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nested_deferred_blocks_act_once_after_the_outermost():
    done = []
    with pytest.raises(KeyboardInterrupt), deferred():
        with deferred():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        done.append("the outer block's end")
    assert done == ["the outer block's end"]


def test_an_interrupt_during_a_write_to_the_store_still_ends_the_run_killed(tmp_path):
    """The signal arrives while SQLAlchemy executes an INSERT of the run's metrics (a real SQLite
    store): the write completes, then the interrupt ends the run KILLED. Raised inside the write, it
    left the transaction half done and ending the run failed with "This transaction is closed"."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri)
    engine = tracker.client._tracking_client.store.engine
    sent = []

    def signal_inside(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO METRICS") and not sent:
            sent.append(statement)
            os.kill(os.getpid(), signal.SIGTERM)

    event.listen(engine, "before_cursor_execute", signal_inside)
    try:
        with pytest.raises(Terminated), terminate_as_interrupt(), tracker.run("srcnn", {"seed": 0}) as run_id:
            tracker.log_metrics(run_id, {"train/loss": 0.5, "val/psnr_y": 30.0}, step=3)
            time.sleep(5)  # not reached: the interrupt comes once the write is done
    finally:
        event.remove(engine, "before_cursor_execute", signal_inside)
    assert sent
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "KILLED" and run.info.end_time is not None
    assert run.data.metrics == {"train/loss": 0.5, "val/psnr_y": 30.0}
