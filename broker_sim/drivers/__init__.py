"""Drivers run the sans-IO core: the only modules of broker_sim that touch sockets,
threads, asyncio or the clock."""
