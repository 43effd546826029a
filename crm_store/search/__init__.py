"""Customer lookup: an in-memory index of names, pinyin and initials, read under scope.

`keys` turns names into index keys, `query` reads what a rep typed, `rank` scores and orders,
`index` holds the customers, and `service` keeps one index per process in step with the
database and re-reads every hit through the actor's scope.
"""

from crm_store.search.index import Allowed, CustomerIndex, Hit, IndexedCustomer
from crm_store.search.service import CustomerSearch, Found, learned_key

__all__ = [
    "Allowed",
    "CustomerIndex",
    "CustomerSearch",
    "Found",
    "Hit",
    "IndexedCustomer",
    "learned_key",
]
