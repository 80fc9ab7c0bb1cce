"""How callbacks report problems: a clear ``gr.Error`` for the user, the traceback only in the log."""
from __future__ import annotations

import functools
import logging

import gradio as gr

log = logging.getLogger("rla.app")
_details = {"show": True}  # process-wide: public mode (app.launch) hides unexpected errors' text from visitors


def show_details(show: bool) -> None:
    """Whether unexpected errors show their type and message (local) or only a neutral line (public)."""
    _details["show"] = bool(show)


def user_error(message: str, title: str = "Error") -> gr.Error:
    """An error the user caused (bad input, missing pack): shown as is, not logged as a crash."""
    return gr.Error(message, title=title, print_exception=False)


def guarded(what: str):
    """Decorate a callback so that unexpected exceptions become a short ``gr.Error``.

    ``gr.Error`` passes through unchanged; anything else is logged with its traceback and shown
    as ``"Could not <what>: <type>: <message>"`` (in public mode without the message), so the
    session keeps working.
    """

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except (ValueError, AssertionError) as err:  # shape/value checks from rla: the input's fault
                log.warning("%s failed: %s", what, err)
                raise user_error(f"Could not {what}: {err}") from err
            except Exception as err:  # noqa: BLE001 — last line of defence for the UI
                log.exception("%s failed", what)
                if not _details["show"]:  # its text may name server paths
                    raise user_error(f"Could not {what}: an internal error ({type(err).__name__}); it has been logged.") from err
                raise user_error(f"Could not {what}: {type(err).__name__}: {str(err)[:300]}") from err

        return inner

    return wrap
