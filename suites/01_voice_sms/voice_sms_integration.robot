*** Settings ***
Documentation     Voice and SMS together (plan TEST-INT-001 to 005), with real phones through the proxy and SMS
...               checked at the carrier.

Resource          ../../resources/voice_sms.resource

Suite Setup       Connect To The SMS Platform
Suite Teardown    Disconnect From The SMS Platform
Test Teardown     Close All SIP Phones

Test Tags         sip    smpp    realstack


*** Test Cases ***
Missed Call Is Announced To The Callee By SMS
    [Documentation]    A call the callee rejects goes to voicemail, and the callee gets a missed-call SMS.
    [Tags]    test-int-001
    A Registered Phone    alice    0
    ${bob}=    A Registered Phone    bob    1
    Phone Calls    alice    ${bob}
    Callee Rejects The Call    bob
    The Caller Reaches Voicemail    alice
    Hang Up    alice
    ${caller}=    Subscriber Number Of    0
    ${callee}=    Subscriber Number Of    1
    Subscriber Should Get SMS    ${callee}    ^Missed call from ${caller} at \\d\\d:\\d\\d$

SMS Keyword Makes The Platform Call The Subscriber Back
    [Documentation]    "CALL ME" to the short code: the platform rings the subscriber's phone.
    [Tags]    test-int-002
    A Registered Phone    bob    1
    ${bob}=    Subscriber Number Of    1
    Subscriber Texts The Platform    ${bob}    CALL ME
    Wait For Incoming Call    bob
    Answer Call    bob
    Wait Until Call State    bob    CONFIRMED

Voicemail Transcript Holds The Digits Heard In The Audio
    [Documentation]    The caller plays DTMF tones as audio into voicemail; the callee's SMS transcript has them,
    ...    which proves the caller's media really reached the platform.
    [Tags]    test-int-003
    A Registered Phone    alice    0
    ${bob}=    A Registered Phone    bob    1
    Phone Calls    alice    ${bob}
    Callee Rejects The Call    bob
    The Caller Reaches Voicemail    alice
    Caller Leaves Tones In Voicemail    alice    4711
    ${callee}=    Subscriber Number Of    1
    Subscriber Should Get SMS    ${callee}    ^Voicemail from .*: 4711$

Forwarding Set By SMS Is Followed By The Next Call
    [Documentation]    "FWD <number>" from the subscriber: the platform confirms, and a call to them rings the target.
    [Tags]    test-int-004
    A Registered Phone    alice    0
    ${bob}=    A Registered Phone    bob    1
    ${carol}=    A Registered Phone    carol    2
    ${bob_msisdn}=    Subscriber Number Of    1
    Subscriber Texts The Platform    ${bob_msisdn}    FWD ${carol}
    Subscriber Should Get SMS    ${bob_msisdn}    ^Calls to ${bob} now go to ${carol}$
    Phone Calls    alice    ${bob}
    Phone Answers    carol    alice
    [Teardown]    Forwarding Is Switched Off For    ${bob_msisdn}

Two-Factor Code Keyed In During The Call Is Accepted
    [Documentation]    The platform texts a code during the call; the caller keys it in (DTMF) and it is accepted.
    [Tags]    test-int-005
    Two-Factor Check Should Answer    right    Code accepted

Wrong Two-Factor Code Is Rejected
    [Documentation]    A code other than the one texted is rejected.
    [Tags]    test-int-005
    Two-Factor Check Should Answer    wrong    Code rejected


*** Keywords ***
Two-Factor Check Should Answer
    [Documentation]    Alice calls the two-factor service, keys in the ``right`` or a ``wrong`` code, gets ``answer``.
    [Arguments]    ${which}    ${answer}
    A Registered Phone    alice    0
    Phone Calls    alice    ${SIP_SERVICES}[twofa]
    Wait Until Call State    alice    CONFIRMED
    ${msisdn}=    Subscriber Number Of    0
    ${code}=    The Verification Code Sent To    ${msisdn}
    VAR    ${keyed}=    ${code}
    IF    $which == 'wrong'
        VAR    ${keyed}=    ${{ str((int($code) + 1) % 10 ** len($code)).zfill(len($code)) }}
    END
    Send DTMF    alice    ${keyed}
    Subscriber Should Get SMS    ${msisdn}    ^${answer}$
