*** Settings ***
Documentation    Voice through the platform API (plan TEST-INT-010 to 014): a verified customer provisions a
...              trunk, routes numbers, watches and ends live calls, reads CDRs and sets its caller ID. Every
...              effect is checked at the far end: the phones that ring, the proxy's dialogs, the CDRs.

Resource         ../../resources/platform.resource
Resource         ../../resources/voice.resource

Suite Setup      Connect To The Carrier
Test Setup       A Verified Platform Customer
Test Teardown    Close All SIP Phones

Test Tags        kong    sip    api    realstack


*** Test Cases ***
Provisioned Trunk Registers And Makes A Call
    [Documentation]    The trunk's credentials from the API register at the proxy, and a call over it connects.
    [Tags]    test-int-010
    ${trunk}=    Customer Provisions A Trunk
    The Customer's Trunk Phone    ${trunk}
    ${bob}=    A Registered Phone    bob    1
    A Call Between    pbx    bob    ${bob}
    Media Should Flow Both Ways Through The Relay    pbx    bob

Changed Routing Rule Sends The Next Call Elsewhere
    [Documentation]    A number prefix routed to one phone, then re-routed to another: each call follows the rule.
    [Tags]    test-int-011
    ${trunk}=    Customer Provisions A Trunk
    The Customer's Trunk Phone    ${trunk}
    ${bob}=    A Registered Phone    bob    1
    ${carol}=    A Registered Phone    carol    2
    ${prefix}=    Get Unique MSISDN    7
    ${rule}=    Customer Routes Prefix To User    ${prefix}    ${bob}
    A Finished Call From The Trunk    bob    ${prefix}1
    Update Routing Rule    ${rule}[id]    target_type=user    user=${carol}
    A Finished Call From The Trunk    carol    ${prefix}2

Live Call Is Listed And Ended Through The API
    [Documentation]    The API lists the customer's live call and hangs it up: both phones get the BYE.
    [Tags]    test-int-012
    ${trunk}=    Customer Provisions A Trunk
    The Customer's Trunk Phone    ${trunk}
    ${bob}=    A Registered Phone    bob    1
    ${call}=    A Call Between    pbx    bob    ${bob}
    Call Should Be Active    ${call}[sip_call_id]
    Customer Hangs Up Call    ${call}[sip_call_id]
    Wait Until Call State    pbx    DISCONNECTED
    Wait Until Call State    bob    DISCONNECTED

Finished Call Has A CDR In The API And A Webhook
    [Documentation]    After the hang-up the API returns the call's CDR, and the customer's webhook gets it.
    [Tags]    test-int-013
    ${hook}=    Customer Registers Webhook For    cdr.completed
    ${trunk}=    Customer Provisions A Trunk
    The Customer's Trunk Phone    ${trunk}
    ${bob}=    A Registered Phone    bob    1
    ${call_id}=    A Finished Call From The Trunk    bob    ${bob}
    ${cdr}=    CDR Should Record Call    ${call_id}    ANSWERED
    Should Be True    ${cdr}[duration_s] >= 0    A CDR should have a duration, got ${cdr}[duration_s].
    Customer Webhook Should Receive    ${hook}    cdr.completed    data.call_id=${call_id}

Caller ID Chosen Through The API Is Presented To The Callee
    [Documentation]    A trunk with a pool of numbers presents the number picked through the API.
    [Tags]    test-int-014
    ${first}=    Get Unique Phone Number
    ${second}=    Get Unique Phone Number
    ${trunk}=    Customer Provisions A Trunk    from_pool    ${first}    ${second}
    Customer Sets Caller ID For Trunk    ${trunk}    ${second}
    The Customer's Trunk Phone    ${trunk}
    ${bob}=    A Registered Phone    bob    1
    A Call Between    pbx    bob    ${bob}
    Incoming Caller ID Should Be    bob    ${second}
