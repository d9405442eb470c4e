*** Settings ***
Documentation    Phase 5 (week 5): the full system, end to end.
...              The ISP billing flows of plan 000 and the billing service's refusals of bad input.

Test Tags        phase-5
