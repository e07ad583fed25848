#include "testutil.h"
#include "tr_actor.h"
static Suite *s(void){return suite_create("x");}
TR_TEST_MAIN(s)
