# dj_protobuf_c(<proto> <src_var> <gen_dir_var>): generate C for <proto> (a file in the calling
# folder) with protoc-c into <binary dir>/gen at build time, never committed. Sets <src_var> to the
# generated .pb-c.c (compiled with -w: our -Wmissing-prototypes and friends are not its style)
# and <gen_dir_var> to the folder that holds the .pb-c.h.
find_program(PROTOC_C protoc-c REQUIRED)

function(dj_protobuf_c proto src_var gen_dir_var)
	get_filename_component(base ${proto} NAME_WE)
	set(gen ${CMAKE_CURRENT_BINARY_DIR}/gen)
	add_custom_command(
		OUTPUT ${gen}/${base}.pb-c.c ${gen}/${base}.pb-c.h
		COMMAND ${CMAKE_COMMAND} -E make_directory ${gen}
		COMMAND ${PROTOC_C} --c_out=${gen} -I${CMAKE_CURRENT_SOURCE_DIR}
			${CMAKE_CURRENT_SOURCE_DIR}/${proto}
		DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${proto}
		COMMENT "protoc-c ${proto}"
		VERBATIM)
	set_source_files_properties(${gen}/${base}.pb-c.c PROPERTIES COMPILE_OPTIONS "-w")
	set(${src_var} ${gen}/${base}.pb-c.c PARENT_SCOPE)
	set(${gen_dir_var} ${gen} PARENT_SCOPE)
endfunction()
