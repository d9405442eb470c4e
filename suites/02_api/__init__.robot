*** Settings ***
Documentation    Phase 2 (week 2): the platform's APIs through the API gateway.
...              The platform API is published on the gateway once per run (whichever worker comes first).

Library          pabot.PabotLib
Resource         ../../resources/platform.resource

Suite Setup      Run Setup Only Once    Publish The Platform API Through The Gateway

Test Tags        phase-2
