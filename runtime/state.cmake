# Keyed state (include/eddy/state.h): the memory and LevelDB backends, timers, snapshot
# files and restore. Included from the top-level CMakeLists.txt after eddy_core:
#   include(runtime/state.cmake)
add_library(eddy_state STATIC
  ${CMAKE_CURRENT_LIST_DIR}/state.c
  ${CMAKE_CURRENT_LIST_DIR}/state_mtab.c
  ${CMAKE_CURRENT_LIST_DIR}/state_ldb.c
  ${CMAKE_CURRENT_LIST_DIR}/state_snap.c
  ${CMAKE_CURRENT_LIST_DIR}/state_tq.c
)
# eddy_core brings the include paths, LevelDB, msgpack-c and zlib
target_link_libraries(eddy_state PUBLIC eddy_core PkgConfig::XXHASH)
