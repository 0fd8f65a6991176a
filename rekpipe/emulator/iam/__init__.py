"""IAM enforcement for the embedded runtime: every caller acts with its own role, and AWS's refusals happen locally.

See :mod:`rekpipe.emulator.iam.enforcement` for what is checked, and the README for what is not.
"""

from rekpipe.emulator.iam.enforcement import DeliveryRefusal, IamEnforcement, active
from rekpipe.emulator.iam.identities import AssumeRoleDeniedError, IdentityBroker, RoleSession
from rekpipe.emulator.iam.signing import acting_as, current_credentials

__all__ = [
    "AssumeRoleDeniedError",
    "DeliveryRefusal",
    "IamEnforcement",
    "IdentityBroker",
    "RoleSession",
    "acting_as",
    "active",
    "current_credentials",
]
