"""Exceptions, named and arranged as kombu's and py-amqp's so that ``except`` clauses written
for kombu keep working (kombu.exceptions, amqp.exceptions).

AMQP errors carry the reply code and text RabbitMQ sent; :func:`error_for` picks the class
from the code, with the same code table the broker simulator uses.
"""

from __future__ import annotations

from broker_sim.replies import Code, is_hard


class KombuError(Exception):
    """Base of every error this client raises."""


class OperationalError(KombuError):
    """Recoverable failure of an operation (kombu raises it when ``ensure`` gives up)."""


class PublishTimeout(OperationalError, TimeoutError):
    """``Producer.publish(timeout=...)`` ran out: a ``socket.timeout`` (TimeoutError) as
    kombu's, and an OperationalError. ``ensure`` does not retry it: it is the caller's
    own deadline, not a failure. ``sent`` tells whether the message went out (then its
    outcome is unknown) or was held back (a connection blocked by connection.blocked)."""

    def __init__(self, text: str, sent: bool = True) -> None:
        super().__init__(text)
        self.sent = sent


class SerializationError(KombuError):
    pass


class EncodeError(SerializationError):
    pass


class DecodeError(SerializationError):
    pass


class ContentDisallowed(SerializationError):
    """A message's content type is not in the consumer's ``accept`` list."""


class LimitExceeded(KombuError):
    pass


class ConnectionLimitExceeded(LimitExceeded):
    pass


class ChannelLimitExceeded(LimitExceeded):
    pass


class InconsistencyError(ConnectionError):
    pass


class ConfigurationError(KombuError, ValueError):
    """A URL, strategy or retry setting is invalid; raised when the object is built."""


class AMQPError(Exception):
    """An error the broker reported (py-amqp's amqp.exceptions.AMQPError)."""

    code = 0

    def __init__(self, reply_text: str = "", method_sig=None, reply_code: int | None = None):
        super().__init__(reply_text)
        self.reply_text = reply_text
        self.method_sig = method_sig
        if reply_code is not None:
            self.code = reply_code

    @property
    def reply_code(self) -> int:
        return self.code

    def __str__(self) -> str:
        return f"({self.code}) {self.reply_text}"


class AMQPConnectionError(AMQPError, ConnectionError):
    """A hard error: the broker closed the connection."""


class AMQPChannelError(AMQPError):
    """A soft error: the broker closed one channel."""


class RecoverableConnectionError(AMQPConnectionError):
    pass


class IrrecoverableConnectionError(AMQPConnectionError):
    pass


class RecoverableChannelError(AMQPChannelError):
    pass


class IrrecoverableChannelError(AMQPChannelError):
    pass


class MessageNacked(RecoverableChannelError):
    """The broker answered a confirmed publish with basic.nack: it does not have the
    message (py-amqp's amqp.exceptions.MessageNacked). Recoverable: ``ensure`` (and
    ``publish(retry=True)``) sends it again, with its message_id, after the back-off."""

    def __init__(self, reply_text: str = "message nacked by the broker", *args, **kwargs):
        super().__init__(reply_text, *args, **kwargs)


class ConsumerCancelled(RecoverableConnectionError):
    """The broker cancelled a consumer (basic.cancel from the server)."""


class ConnectionForced(RecoverableConnectionError):
    code = Code.CONNECTION_FORCED


class AccessRefused(IrrecoverableChannelError):
    code = Code.ACCESS_REFUSED


class NotFound(IrrecoverableChannelError):
    code = Code.NOT_FOUND


class ResourceLocked(RecoverableChannelError):
    code = Code.RESOURCE_LOCKED


class NoConsumers(RecoverableChannelError):
    code = Code.NO_CONSUMERS


class PreconditionFailed(IrrecoverableChannelError):
    code = Code.PRECONDITION_FAILED


class ContentTooLarge(RecoverableChannelError):
    code = Code.CONTENT_TOO_LARGE


class NoRoute(RecoverableChannelError):
    code = Code.NO_ROUTE


class FrameError(IrrecoverableConnectionError):
    code = Code.FRAME_ERROR


class FrameSyntaxError(IrrecoverableConnectionError):
    code = Code.SYNTAX_ERROR


class CommandInvalid(IrrecoverableConnectionError):
    code = Code.COMMAND_INVALID


class ChannelError(IrrecoverableConnectionError):
    code = Code.CHANNEL_ERROR


class UnexpectedFrame(IrrecoverableConnectionError):
    code = Code.UNEXPECTED_FRAME


class ResourceError(RecoverableConnectionError):
    code = Code.RESOURCE_ERROR


class NotAllowed(IrrecoverableConnectionError):
    code = Code.NOT_ALLOWED


class NotImplementedAMQP(IrrecoverableConnectionError):
    code = Code.NOT_IMPLEMENTED


class InternalError(IrrecoverableConnectionError):
    """py-amqp files 541 with the irrecoverable errors: kombu's ensure raises it at once."""

    code = Code.INTERNAL_ERROR


class LoginRefused(AMQPConnectionError):
    """A refused login arrives as connection.close 403: a connection error, not a channel's."""

    code = Code.ACCESS_REFUSED


_BY_CODE = {
    cls.code: cls
    for cls in (
        ConnectionForced,
        AccessRefused,
        NotFound,
        ResourceLocked,
        NoConsumers,
        PreconditionFailed,
        ContentTooLarge,
        NoRoute,
        FrameError,
        FrameSyntaxError,
        CommandInvalid,
        ChannelError,
        UnexpectedFrame,
        ResourceError,
        NotAllowed,
        NotImplementedAMQP,
        InternalError,
    )
}


def error_for(code: int, text: str, method_sig=None, on_connection: bool = False) -> AMQPError:
    """The exception for a close with ``code``; ``on_connection`` for connection.close."""
    if on_connection and code == Code.ACCESS_REFUSED:
        return LoginRefused(text, method_sig, code)
    cls = _BY_CODE.get(code)
    if cls is None:
        hard = on_connection or is_hard(code) or code >= 500  # 5xx: connection errors
        base = AMQPConnectionError if hard else AMQPChannelError
        return base(text, method_sig, code)
    return cls(text, method_sig, code)


#: What ``Connection.connection_errors`` lists: failures that a reconnect can cure.
CONNECTION_ERRORS = (AMQPConnectionError, ConnectionError, OSError, TimeoutError)
#: Channel-level errors (``Connection.channel_errors``).
CHANNEL_ERRORS = (AMQPChannelError,)
#: What kombu's ``ensure`` retries without a reconnect (py-amqp's RecoverableChannelError:
#: 311 CONTENT_TOO_LARGE, 313 NO_CONSUMERS, 405 RESOURCE_LOCKED).
RECOVERABLE_CHANNEL_ERRORS = (RecoverableChannelError,)
#: What ``ensure`` raises at once, unchanged (403, 404, 406; hard errors 5xx but 506).
#: Listed apart because AMQPConnectionError is an OSError: ``except OSError`` alone would
#: retry them.
IRRECOVERABLE_ERRORS = (IrrecoverableChannelError, IrrecoverableConnectionError)
