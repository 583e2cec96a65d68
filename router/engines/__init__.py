"""Model engines behind one protocol (`router.engines.base.Engine`)."""
