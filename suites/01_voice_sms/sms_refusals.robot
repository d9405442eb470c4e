*** Settings ***
Documentation     The SMS gateway refuses what it must: a wrong password, and more traffic than an account may send.

Resource          ../../resources/sms.resource

Suite Setup       Connect To The SMS Platform
Suite Teardown    Disconnect From The SMS Platform
Test Teardown     Close All SMPP Connections

Test Tags         smpp    realstack


*** Test Cases ***
Wrong Password Is Refused With ESME_RINVPASWD
    [Documentation]    The bind fails naming the SMPP status; the password is not in the message.
    ${account}=    This Worker's SMPP Account
    Binding Should Be Refused    ${account}[system_id]    wrongpw    ESME_RINVPASWD

Account Over Its Rate Is Throttled And Backs Off
    [Documentation]    A burst over the account's rate gets ESME_RTHROTTLED for the excess; Submit SMS then backs
    ...    off and retries, so every later message reaches the carrier. One test: the account's rate is shared.
    The Throttled Customer Binds To The SMS Gateway
    ${recipient}=    A Subscriber Number
    ${result}=    Customer Sends A Burst    10    ${recipient}
    The Gateway Should Have Throttled Some    ${result}
    ${ids}=    Customer Sends Messages    5    ${recipient}
    Carrier Should Have Received SMS    to=${recipient}    text=queued message 4
    Every Part Should Be Delivered    ${ids}

Malformed Number Is Refused Before Anything Is Sent
    [Documentation]    A destination with letters fails at once, naming the value and the fix.
    Customer Binds To The SMS Gateway
    Run Keyword And Expect Error    *254-CALL-ME*
    ...    Submit SMS    254700000001    254-CALL-ME    hello
