"""Provider fees: the signed quote that ``startOrder`` checks on chain (``provider_fees``)
and the quotes initialize hands out (``quotes``)."""
