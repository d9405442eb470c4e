*** Settings ***
Documentation     A customer submits SMS over SMPP: each reaches the carrier in the right coding and parts, and
...               a delivery receipt comes back for every part.

Resource          ../../resources/sms.resource

Suite Setup       Connect To The SMS Platform
Suite Teardown    Disconnect From The SMS Platform
Test Setup        Customer Binds To The SMS Gateway
Test Teardown     Close All SMPP Connections
Test Template     SMS Should Reach The Carrier And Be Delivered

Test Tags         smpp    realstack


*** Variables ***
# 400 GSM characters: three parts of at most 153; the € (an escape pair) sits across the first boundary.
${LONG_GSM7}     ${{ "A" * 152 + "€" + "B" * 247 }}
# 40 emoji (80 UTF-16 units): two parts of at most 67 units, never splitting a surrogate pair.
${EMOJI_TEXT}    ${{ "📞" * 40 }}


*** Test Cases ***    TEXT    CODING    PARTS
Plain Text Goes As GSM7    Meet at 10:00 {room 4} costs 5€    gsm7    1
Cyrillic Text Goes As UCS2    Встреча в 10:00, комната 4    ucs2    1
Long Text Goes In Three Parts    ${LONG_GSM7}    gsm7    3
Emoji Text Goes As UCS2 In Two Parts    ${EMOJI_TEXT}    ucs2    2


*** Keywords ***
SMS Should Reach The Carrier And Be Delivered
    [Documentation]    Sends ``text``: the carrier gets it in ``coding`` and ``parts``; each part gets a receipt.
    [Arguments]    ${text}    ${coding}    ${parts}
    ${sender}=    A Subscriber Number
    ${recipient}=    A Subscriber Number
    ${ids}=    Customer Sends SMS    ${sender}    ${recipient}    ${text}
    Length Should Be    ${ids}    ${parts}
    The Carrier Should Have Received    ${recipient}    ${text}    ${coding}    ${parts}
    Every Part Should Be Delivered    ${ids}
