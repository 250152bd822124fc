# Included by llama.cpp's first project() call (CMAKE_PROJECT_INCLUDE, set by modelswitch's local
# setup). The package builds `cmake --build .` with no target, i.e. everything: ~30 tools and
# their libraries. At the end of configuring, every target but llama-server leaves `all`;
# the libraries llama-server links are still built, as its dependencies.
include_guard(GLOBAL)

function(_modelswitch_server_only dir)
  get_property(targets DIRECTORY "${dir}" PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target IN LISTS targets)
    if(NOT target STREQUAL "llama-server")
      set_property(TARGET "${target}" PROPERTY EXCLUDE_FROM_ALL TRUE)
    endif()
  endforeach()
  get_property(subdirs DIRECTORY "${dir}" PROPERTY SUBDIRECTORIES)
  foreach(subdir IN LISTS subdirs)
    _modelswitch_server_only("${subdir}")
  endforeach()
endfunction()

cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _modelswitch_server_only "${CMAKE_SOURCE_DIR}")
