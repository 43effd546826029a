"""What a sales command does once its customer (or deal) is chosen: the sales continuations."""

from __future__ import annotations

from enum import StrEnum


class SalesStep(StrEnum):
    LOG = "log"  # record a follow-up
    DEAL = "deal"  # open a deal
    STAGE = "stage"  # move the customer's deal
    STAGE_DEAL = "stage_deal"  # move the chosen deal (an option, not a customer)
    CLAIM = "claim"  # take the customer from the public pool
    SHARE = "share"  # let a colleague in on the customer, or shut them out
    EDIT_CUSTOMER = "edit_customer"  # change a field of the customer
    EDIT_DEAL = "edit_deal"  # change a field of the customer's deal
    EDIT_CHOSEN_DEAL = "edit_chosen_deal"  # change a field of the chosen deal (an option)


SELLERS = ("rep", "manager", "admin")  # who works customers and deals
