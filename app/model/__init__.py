"""Qt-free model of the studio (napari's components/ layer; STYLE_ANCHORS §1).

Nothing in this package may import Qt (``tests/studio/test_session_model.py`` proves it), so the whole
session logic (panes, requests, cache, RD data, persistence) is testable headless.
"""
from .encoding import Encoding, EncodingCache, PaneSettings, params_key
from .events import EmitterGroup, Event, EventedModel, EventEmitter
from .session import CancelToken, EncodeRequest, Pane, SessionModel
from .view_state import ViewState

__all__ = ["CancelToken", "EmitterGroup", "EncodeRequest", "Encoding", "EncodingCache", "Event",
           "EventEmitter", "EventedModel", "Pane", "PaneSettings", "SessionModel", "ViewState",
           "params_key"]
