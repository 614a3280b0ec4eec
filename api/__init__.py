"""The investigator's desk: FastAPI app, REST API with roles, and the web pages.

::

    app = create_app(settings)              # settings.api: ApiSettings
    uvicorn.run(app, host=..., port=...)
"""

from __future__ import annotations

from api.app import create_app
from api.keys import KeyStore, Principal, Role
from api.settings import ApiSettings

__all__ = ["ApiSettings", "KeyStore", "Principal", "Role", "create_app"]
