# Runs `eddy demo INPUT`, writes OUT and compares it byte for byte with EXPECTED
# (both sorted by origin; EXPECTED was computed with DuckDB, see examples/data/README.md).
execute_process(COMMAND ${EDDY} demo ${INPUT} OUTPUT_FILE ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "eddy demo ${INPUT} exited ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${EXPECTED} ${OUT} RESULT_VARIABLE diff)
if(NOT diff EQUAL 0)
  message(FATAL_ERROR "${OUT} differs from ${EXPECTED}")
endif()
message(STATUS "equal: ${OUT} == ${EXPECTED}")
