# fleet_add_test(NAME SOURCES... LIBS ... [TIMEOUT s] [NATIVE_HARNESS]): one cmocka executable
# registered with ctest. With FLEET_VALGRIND the test runs under valgrind memcheck (any error or
# definite leak fails it) and so do the daemons it starts (FLEET_TEST_WRAPPER, tests/spawn.h);
# NATIVE_HARNESS keeps the test process itself native, for a harness that does too much
# inference to be run ~1000x slower.
find_library(CMOCKA_LIB cmocka)
find_path(CMOCKA_INCLUDE cmocka.h)
set(FLEET_VALGRIND_COMMAND valgrind -q --error-exitcode=99 --leak-check=full
    --errors-for-leak-kinds=definite,indirect)
function(fleet_add_test name)
  cmake_parse_arguments(T "NATIVE_HARNESS" "TIMEOUT" "SOURCES;LIBS;ARGS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_include_directories(${name} PRIVATE ${CMOCKA_INCLUDE})
  target_link_libraries(${name} PRIVATE ${T_LIBS} ${CMOCKA_LIB})
  set(command ${name} ${T_ARGS})
  if(FLEET_VALGRIND)
    if(NOT T_NATIVE_HARNESS)
      set(command ${FLEET_VALGRIND_COMMAND} $<TARGET_FILE:${name}> ${T_ARGS})
    endif()
    math(EXPR T_TIMEOUT "${T_TIMEOUT} * 4")
    list(JOIN FLEET_VALGRIND_COMMAND " " wrapper)
    set(environment "FLEET_TEST_WRAPPER=${wrapper}")
  endif()
  add_test(NAME ${name} COMMAND ${command} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} ENVIRONMENT "${environment}")
endfunction()
