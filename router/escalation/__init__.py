"""Self-Ref escalation: the small model's own uncertainty decides a call to the strong model.

`scorers` measure uncertainty in [0, 1] (token log-probabilities, AutoMix self-verification,
Self-REF confidence tokens); `policy` turns it into a decision with a threshold τ that can
be calibrated to a target escalation rate.

Example::

    from router.escalation import EscalationPolicy, create_uncertainty_scorer, engine_probe

    scorer = create_uncertainty_scorer(config.escalation.scorer)
    u = await scorer.uncertainty(messages, completion, engine_probe(engine))
    escalate = EscalationPolicy(config.escalation).should_escalate(u)
"""

from router.escalation.policy import EscalationPolicy, escalation_rate, tau_for_rate
from router.escalation.uncertainty import (
    CONFIDENT_TOKEN,
    SCORER_NAMES,
    UNCERTAIN_TOKEN,
    NextTokenProbe,
    SelfRefScorer,
    SelfVerifyScorer,
    UncertaintyScorer,
    create_uncertainty_scorer,
    engine_probe,
)

__all__ = [
    "CONFIDENT_TOKEN",
    "SCORER_NAMES",
    "UNCERTAIN_TOKEN",
    "EscalationPolicy",
    "NextTokenProbe",
    "SelfRefScorer",
    "SelfVerifyScorer",
    "UncertaintyScorer",
    "create_uncertainty_scorer",
    "engine_probe",
    "escalation_rate",
    "tau_for_rate",
]
