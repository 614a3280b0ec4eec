"""PII masking for alert cards and prompts.

Cards and prompts never hold a full card number, device id, customer id, name,
e-mail or coordinates: card and device show their last four characters, the
customer becomes a keyed hash (linkable across alerts by whoever holds the key) or
is dropped when no key is configured.
"""

from __future__ import annotations

import hashlib
import hmac

MASK = "****"


def mask_tail(value: str | None, keep: int = 4) -> str | None:
    """``"4111111111111111"`` -> ``"****1111"``; ids too short to hide anything are fully masked.

    >>> mask_tail("card-000123")
    '****0123'
    >>> mask_tail("c12")
    '****'
    """
    if value is None:
        return None
    text = str(value)
    if len(text) <= 2 * keep:
        # Showing four characters of an id this short would show most of it.
        return MASK + (text[-2:] if len(text) > keep else "")
    return MASK + text[-keep:]


def customer_ref(customer_id: str | None, key: bytes | None) -> str | None:
    """A keyed, non-reversible reference to a customer (HMAC-SHA256, 16 hex chars); None without a key.

    An unkeyed hash of a short id could be reversed by trying every id, so no key means no reference.
    """
    if customer_id is None or not key:
        return None
    return "cust_" + hmac.new(key, str(customer_id).encode("utf-8"), hashlib.sha256).hexdigest()[:16]
