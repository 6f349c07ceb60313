/* Tests of the status strings and error-detail helpers. */
#include "harness.h"
#include "inspectd/status.h"

static void strerror_known_and_unknown(void)
{
    CHECK(strcmp(insp_strerror(INSP_OK), "ok") == 0);
    CHECK(strcmp(insp_strerror(INSP_ERR_FORMAT), "malformed data") == 0);
    CHECK(strcmp(insp_strerror(12345), "unknown status") == 0);
}

static void error_set_and_prefix(void)
{
    insp_error e;
    insp_error_clear(&e);
    CHECK_EQ_INT(e.status, INSP_OK);
    CHECK_EQ_INT(insp_error_set(&e, INSP_ERR_SHAPE, "tensor %s", "x"), INSP_ERR_SHAPE);
    CHECK(strcmp(e.msg, "tensor x") == 0);
    CHECK_EQ_INT(insp_error_prefix(&e, "model %d: ", 7), INSP_ERR_SHAPE);
    CHECK(strcmp(e.msg, "model 7: tensor x") == 0);
    CHECK_EQ_INT(insp_error_set(NULL, INSP_ERR_IO, "ignored"), INSP_ERR_IO);
}

TEST_MAIN(T(strerror_known_and_unknown), T(error_set_and_prefix))
