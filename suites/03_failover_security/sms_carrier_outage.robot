*** Settings ***
Documentation     The carrier link goes down: the gateway queues what customers send and delivers all of it
...               when the carrier returns (the plan's "zero message loss").

Library           FaultLibrary    backend=${FAULT_BACKEND}    url=${FAULT_URL}
Resource          ../../resources/sms.resource

Suite Setup       Connect To The SMS Platform
Suite Teardown    Disconnect From The SMS Platform
Test Setup        Customer Binds To The SMS Gateway

Test Tags         smpp    realstack    zero-message-loss


*** Test Cases ***
Messages Sent While The Carrier Is Down Are All Delivered When It Returns
    [Documentation]    20 messages while the carrier is killed: every one reaches it and is delivered afterwards.
    ${recipient}=    A Number Behind The Outage Carrier
    Kill Platform Process    ${OUTAGE_CARRIER_PROCESS}
    ${ids}=    Customer Sends Messages    20    ${recipient}
    Start Platform Process    ${OUTAGE_CARRIER_PROCESS}
    Connect To Carrier SMSC    ${OUTAGE_CARRIER_CONTROL_URL}    alias=outage-carrier
    Carrier Message Count Should Be    20    timeout=30s
    Every Part Should Be Delivered    ${ids}
