# Proves that another project can use ddb2os: MODE=find_package installs ddb2os into a prefix
# and builds a consumer with find_package(ddb2os CONFIG); MODE=add_subdirectory vendors the tree.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

set(dir ${WORK_DIR}/${MODE})
file(REMOVE_RECURSE ${dir})
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${dir}/lib -DCMAKE_CXX_COMPILER=${CXX}
      -DDDB2OS_BUILD_TESTS=OFF -DDDB2OS_BUILD_CLI=OFF -DDDB2OS_INSTALL=ON)
  run(${CMAKE_COMMAND} --install ${dir}/lib --prefix ${dir}/prefix)
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer/find_package -B ${dir}/app
      -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${dir}/prefix)
else()
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer/add_subdirectory -B ${dir}/app
      -DCMAKE_CXX_COMPILER=${CXX} -DDDB2OS_SOURCE_DIR=${SOURCE_DIR})
endif()
set(expected "{\"index\":{\"_index\":\"books\",\"_id\":\"Dan Brown|The Da Vinci Code\"}}\n{\"author\":\"Dan Brown\",\"bookTitle\":\"The Da Vinci Code\",\"year\":2003}\n")
set(apps ${dir}/app)
if(MODE STREQUAL "find_package")  # and a core-only consumer on a machine without libcurl
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer/core_only -B ${dir}/core_only
      -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${dir}/prefix -DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON)
  list(APPEND apps ${dir}/core_only)
endif()
foreach(app IN LISTS apps)
  run(${CMAKE_COMMAND} --build ${app})
  run(${app}/consumer)
  if(NOT last_output STREQUAL expected)
    message(FATAL_ERROR "consumer ${app} printed:\n${last_output}\nexpected:\n${expected}")
  endif()
endforeach()
message(STATUS "consumer (${MODE}) OK")
