"""The one error type the service turns into `{"error": "…"}` with a status code."""


class ApiError(Exception):
    """A request the service refuses: `status` is the HTTP code, the message names what is at fault."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
