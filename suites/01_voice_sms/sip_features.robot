*** Settings ***
Documentation     The voice platform's SIP features with real test phones: registration with digest
...               authentication, calls through the proxy with media through the relay, DTMF, hold, transfer,
...               SIP MESSAGE, call records, and what it must refuse.

Resource          ../../resources/voice.resource

Suite Setup       Connect To The CDR Database
Suite Teardown    Disconnect From The Voice Platform
Test Teardown     Close All SIP Phones

Test Tags         sip    realstack


*** Test Cases ***
Phone Registers With Digest Authentication
    [Documentation]    The registrar challenges and then accepts the right password.
    A Registered Phone    alice    0

Wrong Password Is Refused With 403
    [Documentation]    The registrar refuses a known user with a wrong password.
    ${account}=    This Worker's SIP Account    0
    Registering Should Be Refused    ${account}[user]    not-the-password    403

Unknown User Is Refused With 404
    [Documentation]    The registrar does not know the user at all.
    Registering Should Be Refused    9999    whatever    404

Call Is Answered With Media Through The Relay And Recorded
    [Documentation]    A call between two registered phones: answered, RTP both ways anchored at the relay, an
    ...    ANSWERED call record after the hang-up.
    A Registered Phone    alice    0
    ${bob}=    A Registered Phone    bob    1
    ${call}=    A Call Between    alice    bob    ${bob}
    Media Should Flow Both Ways Through The Relay    alice    bob
    Caller Hangs Up    alice    bob
    CDR Should Show    ${call}[sip_call_id]    ANSWERED

DTMF Reaches The Other Phone As RFC 2833 Events
    [Documentation]    Digits sent as RTP events arrive as such.
    DTMF Should Reach The Other Phone    rfc2833

DTMF Reaches The Other Phone As SIP INFO
    [Documentation]    Digits sent in SIP INFO requests arrive as such.
    DTMF Should Reach The Other Phone    info

Hold And Resume Change The Media Direction
    [Documentation]    Hold is a re-INVITE that makes the other side's media receive-only; resume restores it.
    A Registered Phone    alice    0
    ${bob}=    A Registered Phone    bob    1
    A Call Between    alice    bob    ${bob}
    Hold Call    alice
    Media Direction Should Be    bob    recvonly    timeout=5s
    Resume Call    alice
    Media Direction Should Be    bob    sendrecv    timeout=5s

Blind Transfer Connects The Caller To A Third Phone
    [Documentation]    The callee transfers the caller (REFER) to a third phone, which answers by itself: the
    ...    transfer completes only once it has (the final NOTIFY).
    ${alice}=    A Registered Phone    alice    0
    ${bob}=    A Registered Phone    bob    1
    ${carol}=    A Registered Phone    carol    2    auto_answer=200
    A Call Between    alice    bob    ${bob}
    Blind Transfer    bob    ${carol}
    Wait Until Call State    carol    CONFIRMED
    Incoming Caller ID Should Be    carol    ${alice}

Callee's Rejection Code Reaches The Caller
    [Documentation]    A callee declining with 603 Decline: the caller's call ends with that code.
    A Registered Phone    alice    0
    ${bob}=    A Registered Phone    bob    1
    Phone Calls    alice    ${bob}
    Wait For Incoming Call    bob
    Reject Call    bob    code=603
    Wait Until Call State    alice    DISCONNECTED    status=603

Custom Headers Reach The Callee
    [Documentation]    A header the caller adds to the INVITE arrives at the callee through the proxy.
    A Registered Phone    alice    0
    ${bob}=    A Registered Phone    bob    1
    Call    alice    ${bob}    headers=${{ {'X-Campaign-Id': 'C-42'} }}
    ${invite}=    Wait For Incoming Call    bob
    Should Be Equal    ${invite}[headers][X-Campaign-Id]    C-42

Audio Played By One Phone Is Recorded By The Other With A Good MOS
    [Documentation]    Tones played into the call are recorded on the far side (not silent), and the RTP figures
    ...    of the clean loopback call give an MOS estimate of at least 4.
    A Registered Phone    alice    0
    ${bob}=    A Registered Phone    bob    1
    A Call Between    alice    bob    ${bob}
    Recorded Audio Should Not Be Silent    alice    bob
    ${stats}=    Get RTP Statistics    bob
    Should Be True
    ...    ${stats}[mos] >= 4.0
    ...    A clean loopback call should have an MOS of at least 4, got ${stats}[mos].

SIP MESSAGE Is Delivered Through The Proxy
    [Documentation]    An instant message from one registered phone reaches the other.
    A Registered Phone    alice    0
    ${bob}=    A Registered Phone    bob    1
    Send SIP MESSAGE    alice    sip:${bob}@${SIP_DOMAIN}    Lunch at noon?
    Wait Until SIP MESSAGE Received    bob    text_regex=^Lunch at noon\\?$

Malformed Number Is Refused Before Anything Is Sent
    [Documentation]    A destination that is neither a SIP URI nor a number fails at once, naming it.
    A Registered Phone    alice    0
    Run Keyword And Expect Error    *sip:bad@@uri*    Call    alice    sip:bad@@uri


*** Keywords ***
Recorded Audio Should Not Be Silent
    [Documentation]    ``player`` plays tones while ``recorder`` records; the recording holds a second or more of sound.
    [Arguments]    ${player}    ${recorder}
    ${wav}=    Create DTMF Tone WAV File    123456789    ${OUTPUT_DIR}${/}play-${player}.wav
    Start Recording Call    ${recorder}    ${OUTPUT_DIR}${/}recorded-${recorder}.wav
    Play WAV File    ${player}    ${wav}
    Media Should Be Flowing    ${recorder}    min_packets=100
    Stop Recording    ${recorder}
    ${info}=    Get WAV File Info    ${OUTPUT_DIR}${/}recorded-${recorder}.wav
    Should Be True    ${info}[duration] >= 1.0 and ${info}[rms_dbfs] > -50
    ...    The recording should hold the played tones; it has ${info}[duration] s at ${info}[rms_dbfs] dBFS.

DTMF Should Reach The Other Phone
    [Documentation]    A call between two phones; ``1234#`` sent one way with ``method`` arrives that way.
    [Arguments]    ${method}
    A Registered Phone    alice    0
    ${bob}=    A Registered Phone    bob    1
    A Call Between    alice    bob    ${bob}
    Send DTMF    alice    1234#    method=${method}
    Wait Until DTMF Received    bob    1234#    method=${method}
