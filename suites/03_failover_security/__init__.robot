*** Settings ***
Documentation    Phase 3 (week 3): failover and security: real processes are stopped and killed.

Test Tags        phase-3
