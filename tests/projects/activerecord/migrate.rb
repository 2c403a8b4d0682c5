# Run the project's ActiveRecord migrations against DATABASE_URL (as `rails db:migrate` would).
require "active_record"

ActiveRecord::Base.establish_connection(ENV.fetch("DATABASE_URL"))
ActiveRecord::MigrationContext.new(File.join(__dir__, "db/migrate"), ActiveRecord::SchemaMigration).migrate
puts "migrated to #{ActiveRecord::Base.connection.migration_context.current_version}"
