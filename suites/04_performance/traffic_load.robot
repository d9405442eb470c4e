*** Settings ***
Documentation     Load on the voice and SMS paths: SIPp calls through the proxy to the PSTN carrier, and a burst
...               of SMS over one bind. Every call and message must succeed.

Library           SipLoadLibrary    timeout=${SIP_LOAD_TIMEOUT}
Resource          ../../resources/sms.resource
Resource          ../../resources/voice.resource

Suite Setup       Connect To The SMS Platform
Suite Teardown    Disconnect From The SMS Platform
Test Teardown     Stop All SIPp

Test Tags         realstack


*** Test Cases ***
Proxy Carries A Steady Call Rate To The PSTN Carrier With No Failed Call
    [Documentation]    300 calls at 50 calls/s from an authenticated phone through the proxy to the carrier (SIPp).
    [Tags]    test-int-061    sip
    ${account}=    This Worker's SIP Account    0
    Start SIPp UAS    alias=pstn    port=${SIP_PSTN_PEER}[port]
    Run SIPp UAC    ${SIP_PROXY}    ${SIP_PSTN_PEER}[prefix]4420000    rate=50    count=300
    ...    auth_user=${account}[user]    auth_password=${account}[password]    caller=${account}[user]
    SIPp Result Should Be    failed    ==    ${0}
    SIPp Result Should Be    successful    ==    ${300}

Burst Of SMS Over One Bind Is Accepted And Reaches The Carrier
    [Documentation]    1000 messages with 50 outstanding at a time: all accepted, all at the carrier.
    [Tags]    test-int-063    smpp
    Customer Binds To The SMS Gateway
    ${recipient}=    A Subscriber Number
    ${result}=    Customer Sends A Burst    1000    ${recipient}    window=50
    Should Be Equal As Integers    ${result}[acked]    1000    All 1000 should be accepted: ${result}[statuses]
    Carrier Message Count Should Be    1000    to=${recipient}    timeout=60s
