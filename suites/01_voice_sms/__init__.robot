*** Settings ***
Documentation    Phase 1 (week 1): voice and SMS together, and each on its own.

Test Tags        phase-1
