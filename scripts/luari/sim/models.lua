-- Swagger models for the simulator's api-docs, by resource. Swagger-driven
-- clients use them to type the objects in replies and events.
return {}
