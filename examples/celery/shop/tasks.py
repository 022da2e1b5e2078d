"""The shop's tasks."""

from shop.worker import app


@app.task(name="shop.charge")
def charge(order_id: int, amount_cents: int) -> dict:
    """Charge an order (here: compute the receipt)."""
    return {"order": order_id, "charged": amount_cents}
