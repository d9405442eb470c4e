*** Settings ***
Documentation    What the API gateway and the platform API refuse, with the right status, and writing nothing:
...              no or a wrong API key (401), a consumer outside the ACL group (403), calls over the rate limit
...              (429, and the limit resets), malformed JSON and schema violations (400/422 naming the field),
...              unknown ids (404).

Resource         ../../resources/platform.resource

Test Teardown    Remove Gateway Entities Of    ${me}

Test Tags        kong    api    bad-input    realstack


*** Test Cases ***
Missing API Key Is Refused With 401
    [Documentation]    No key: the gateway answers 401 and the platform never sees the call.
    Platform Call Should Be Refused    401    ${EMPTY}
    [Teardown]    NONE

Wrong API Key Is Refused With 401
    [Documentation]    A key nobody holds: 401.
    Platform Call Should Be Refused    401    not-a-key-of-anyone
    [Teardown]    NONE

Malformed JSON Is Refused Naming The Body
    [Documentation]    A body that is not JSON: 400 naming ``body``; no SMS is written.
    ${me}=    A Gateway Consumer Of Its Own
    Platform Request Should Be Refused    ${me}    {"to": "254700    400    body

Schema Violation Is Refused Naming The Field
    [Documentation]    An SMS without a recipient: refused naming ``to``; no SMS is written.
    ${me}=    A Gateway Consumer Of Its Own
    Platform Request Should Be Refused    ${me}    {"text": "hello"}    422    to

Unknown SMS Id Is Refused With 404
    [Documentation]    Reading an SMS that does not exist: 404.
    ${me}=    A Gateway Consumer Of Its Own
    ${response}=    Call Through Gateway    GET    ${PLATFORM_ROUTE_PATH}/api/v1/sms/does-not-exist
    ...    consumer_key=${me}[key]    expected_status=404
    Should Be Equal    ${response.json()}[error][status]    ${404}

Consumer Outside The ACL Group Is Refused With 403
    [Documentation]    A route allowed to group ``premium`` only: 403, then 200 once the consumer joins the group.
    ${me}=    A Gateway Consumer Of Its Own
    ${path}=    A Route Allowing Only Group    ${me}    premium
    Call Through Gateway    GET    ${path}    consumer_key=${me}[key]    expected_status=403
    Add Consumer To ACL Group    ${me}[name]    premium
    Wait Until Route Answers    ${path}    consumer_key=${me}[key]    expected_status=200

Calls Over The Rate Limit Are Refused With 429 Until The Window Resets
    [Documentation]    Two calls a second: the third gets 429 with the limit headers; the next second it passes.
    ${me}=    A Gateway Consumer Of Its Own
    ${path}=    A Route Limited To Calls Per Second    ${me}    2
    Call Through Gateway    GET    ${path}    consumer_key=${me}[key]    expected_status=200
    ${second}=    Call Through Gateway    GET    ${path}    consumer_key=${me}[key]    expected_status=200
    Rate Limit Headers Should Show    ${second}    limit=2    remaining=0    window=second
    Call Through Gateway    GET    ${path}    consumer_key=${me}[key]    expected_status=429
    Wait Until Route Answers    ${path}    consumer_key=${me}[key]    expected_status=200    timeout=3s


*** Keywords ***
A Gateway Consumer Of Its Own
    [Documentation]    A consumer with a key; its name also tags everything this test creates on the gateway.
    ...    Returns ``name`` and ``key``.
    ${tag}=    Get Unique Name    gwtest
    Set Default Kong Tags    ${tag}
    Create Consumer    ${tag}
    ${credential}=    Create Key Auth Credential    ${tag}
    VAR    &{me}=    name=${tag}    key=${credential}[key]
    RETURN    ${me}

Remove Gateway Entities Of
    [Documentation]    Deletes what the test created on the gateway, tagged with the consumer's name.
    [Arguments]    ${me}
    Delete All Entities Tagged    ${me}[name]

Platform Call Should Be Refused
    [Documentation]    Listing SMS with ``key`` (empty: none) must get ``status`` from the gateway.
    [Arguments]    ${status}    ${key}
    Call Through Gateway    GET    ${PLATFORM_ROUTE_PATH}/api/v1/sms    consumer_key=${key}
    ...    expected_status=${status}

Platform Request Should Be Refused
    [Documentation]    POSTs the raw ``body`` as an SMS: ``status`` naming ``field``; the customer's SMS stay unchanged.
    [Arguments]    ${me}    ${body}    ${status}    ${field}
    ${before}=    SMS Count Of This Test's Customer    ${me}
    ${response}=    Call Through Gateway    POST    ${PLATFORM_ROUTE_PATH}/api/v1/sms    consumer_key=${me}[key]
    ...    data=${body}    headers=${{ {'Content-Type': 'application/json'} }}    expected_status=${status}
    Should Be Equal    ${response.json()}[error][field]    ${field}
    ${after}=    SMS Count Of This Test's Customer    ${me}
    Should Be Equal    ${before}    ${after}    A refused request should write nothing, but the SMS count changed

SMS Count Of This Test's Customer
    [Documentation]    How many SMS the platform holds for this test's customer.
    [Arguments]    ${me}
    ${response}=    Call Through Gateway    GET    ${PLATFORM_ROUTE_PATH}/api/v1/sms    consumer_key=${me}[key]
    ...    expected_status=200
    ${count}=    Get Length    ${response.json()}[data]
    RETURN    ${count}

A Route Allowing Only Group
    [Documentation]    A route of its own to the platform's health page with key-auth and an ACL allowing ``group``.
    [Arguments]    ${me}    ${group}
    ${path}=    A Route Of Its Own To The Platform    ${me}
    Add Plugin    acl    route=${me}[name]    config=${{ {'allow': [$group]} }}
    RETURN    ${path}

A Route Limited To Calls Per Second
    [Documentation]    A route of its own to the platform's health page with key-auth and ``limit`` calls a second.
    [Arguments]    ${me}    ${limit}
    ${path}=    A Route Of Its Own To The Platform    ${me}
    Add Plugin    rate-limiting    route=${me}[name]    config=${{ {'second': int($limit), 'policy': 'local'} }}
    RETURN    ${path}

A Route Of Its Own To The Platform
    [Documentation]    Service and route named after the test, path ``/<name>`` to the platform's ``/health``, key-auth.
    [Arguments]    ${me}
    Create Service    ${me}[name]    ${PLATFORM_UPSTREAM_URL}/health
    Create Route
    ...    ${me}[name]
    ...    name=${me}[name]
    ...    paths=${{ ['/' + $me['name']] }}
    ...    strip_path=${True}
    Add Plugin    key-auth    route=${me}[name]
    VAR    ${path}=    /${me}[name]
    Wait Until Route Answers    ${path}    consumer_key=${me}[key]    expected_status=200
    RETURN    ${path}
